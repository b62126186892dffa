console.log("shop v2");

console.log("release 2");

"""After repair, proof: testinfra suites run against the hosts over opsfix's own connections."""

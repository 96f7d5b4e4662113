from bench.peers.orchestrator import main

main()

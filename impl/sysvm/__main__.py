from nanvix.impl.sysvm.server import main

main()

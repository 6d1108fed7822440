"""ticketgw: the program — command line, configuration, broker, and the long-running roles."""

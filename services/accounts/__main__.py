from services.accounts.server import main

main()

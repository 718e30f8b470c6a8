from vwh.cli.app import main

main()

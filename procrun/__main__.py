from procrun.cli.entry import main

main()

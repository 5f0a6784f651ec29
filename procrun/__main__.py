from procrun.cli import main

main()

from procrun.entry import main

main()

from thermalcount.cli import main

main()

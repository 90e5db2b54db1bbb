from triggerfish.cli.main import main

main()

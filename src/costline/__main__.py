from costline.cli.main import main

main()

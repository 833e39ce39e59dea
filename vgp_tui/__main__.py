from vgp_tui.cli import main

main()

from obs_tui.cli import main

raise SystemExit(main())

from avatar.cli import main

raise SystemExit(main())

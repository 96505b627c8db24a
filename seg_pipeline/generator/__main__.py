"""``python -m seg_pipeline.generator``."""

from seg_pipeline.generator.cli import main

raise SystemExit(main())

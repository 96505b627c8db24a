"""The bad-input corpus (a private copy of the loaded month whose landing files a test may
edit) and the activated month serve the hostile-input tests too."""

from tests.activation.conftest import activated  # noqa: F401 (the fixture)
from tests.quality.test_bad_inputs import corpus  # noqa: F401 (the fixture)

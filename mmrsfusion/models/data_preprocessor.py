# placeholder: owned by the data helper
from mmseg.models import SegDataPreProcessor as MultiModalSegDataPreProcessor  # noqa

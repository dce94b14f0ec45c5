from .sliding_window import (Window, accumulate_windows, slide_windows,
                             window_spans)

__all__ = ['Window', 'accumulate_windows', 'slide_windows', 'window_spans']

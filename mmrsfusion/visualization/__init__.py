from .multimodal_visualizer import MultiModalSegLocalVisualizer

__all__ = ['MultiModalSegLocalVisualizer']

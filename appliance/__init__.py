"""pen-dock: the software of a docking station for medical skin-needling pens."""
__version__ = "0.1.0"

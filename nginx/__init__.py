"""The Nginx configuration for many Proctor nodes: template and renderer (render.py)."""

"""The guest side: microkernel, SDK and the image builder."""

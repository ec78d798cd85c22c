"""CG-IAA (TCSVT 2024): aesthetic CLIP, attribute experts that write critiques, text + image fusion."""

"""EAT (ACM MM 2023): a DAT-B whose deformable blocks learn their interest points and trust outward offsets."""

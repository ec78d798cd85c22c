"""The NIMA baseline (TIP 2018): an ImageNet backbone and a 10-bin softmax head trained with EMD."""

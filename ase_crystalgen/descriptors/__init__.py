"""Atomic-environment descriptors."""

from .ace import PAPER_LMAX, PAPER_NMAX, ACEDescriptor, DescriptorGradients

__all__ = ["ACEDescriptor", "DescriptorGradients", "PAPER_NMAX", "PAPER_LMAX"]

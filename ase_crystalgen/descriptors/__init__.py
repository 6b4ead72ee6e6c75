"""Atomic-environment descriptors."""

from .ace import PAPER_LMAX, PAPER_NMAX, ACEDescriptor, DescriptorGradients

__all__ = ["ACEDescriptor", "DescriptorGradients", "PAPER_NMAX", "PAPER_LMAX", "SNAPDescriptor"]


def __getattr__(name):
    # SNAPDescriptor's module is light, but keep it (and LAMMPS) off the import path
    if name == "SNAPDescriptor":
        from .snap import SNAPDescriptor

        return SNAPDescriptor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

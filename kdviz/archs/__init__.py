"""Architecture families beyond torchvision, registered into ``kdviz.models`` on import.

``cifar_kd``: the CIFAR zoo of the distillation benchmarks (RepDistiller, mdistiller, torchdistill) with their
parameter names; ``timm_models``: timm models by their timm names (ViT, DeiT).
"""

"""Self-supervised pretraining of the pocket backbone on unlabelled synthetic weather scenes.

``causal-tune pretrain --config config/pretrain/pocket.yaml`` renders scenes under all five conditions and
trains a small DINOv2-layout ViT on dense geometry, de-weathering and cross-weather feature consistency
(no class labels); the result loads with ``DinoV2.from_pretrained`` or as a training config's
``model.backbone.weights``. See models/pocket/README.md.
"""

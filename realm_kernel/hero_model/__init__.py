"""What the realm knows about the hero's model before it loads one, as plain computation:
where a Hub id lives in the local Hugging Face cache (`hub`), what fine-tuning a model
costs in GPU memory (`vram`, with the published architectures) and the training defaults
that suit the hero's size and card (`profiles`). The bottom layer of `realm_kernel`, below
`store`, whose `load_config` asks it for a profile's defaults: it imports nothing of the
realm (torch and huggingface_hub only inside functions). Not named `models`: that is the
realm home's folder of model weights (and ignored by git)."""

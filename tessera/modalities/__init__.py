"""One package or module per modality: reading, transforms, tokenizer and masker."""

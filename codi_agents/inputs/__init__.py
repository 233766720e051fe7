"""What a conversation is made from: documents, passages, personas and flow graphs (private modules)."""

"""What a conversation is made from: documents, their passages, personas and conversation-flow graphs (private modules)."""

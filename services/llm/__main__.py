"""`python -m services.llm` runs the LLM service alone (what its container runs)."""

from services.llm.server import main

if __name__ == "__main__":
    main()

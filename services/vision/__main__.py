"""`python -m services.vision` runs the vision service alone (what its container runs)."""

from services.vision.server import main

if __name__ == "__main__":
    main()

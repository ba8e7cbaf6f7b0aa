"""`python -m services.image` runs the image service alone (what its container runs)."""

from services.image.server import main

if __name__ == "__main__":
    main()

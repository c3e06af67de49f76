"""Model-management routes (tags, show, copy, delete, blobs, create). Filled by the store work."""

from fastapi import APIRouter

router = APIRouter()

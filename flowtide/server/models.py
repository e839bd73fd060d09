"""Request bodies. Unknown fields are rejected so that a misplaced input is not silently lost."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EnqueueJob", "ResolveAwait", "StartRun"]


class StartRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: Any = Field(default=None, description="the entry step's input")


class EnqueueJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    function: str = Field(description="a standalone function's name")
    input: Any = None
    delay: str | float | None = Field(
        default=None, description='run no earlier than this from now: "30s", "5m" or seconds'
    )
    key: str | None = Field(default=None, description="deduplicates unfinished jobs of the queue")


class ResolveAwait(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Any = Field(default=None, description="the payload the awaiting step receives")

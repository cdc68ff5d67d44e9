"""A secret's value from Google Cloud Secret Manager.

Vertex AI Pipelines has no Kubernetes secrets to put into a task's environment; there the
lineage store's password is kept in Secret Manager and named (not given) by
EXAMPLEGEN_MLMD_PASSWORD_SECRET=projects/P/secrets/S/versions/V. It is read here with
google-auth (Application Default Credentials: the pipeline job's service account, which
needs roles/secretmanager.secretAccessor) over Secret Manager's REST API.
"""

from __future__ import annotations

import base64
import os
import re
from typing import Mapping, Optional

from examplegen.errors import ConfigError

ENDPOINT_ENV = "EXAMPLEGEN_SECRET_MANAGER_ENDPOINT"  # another endpoint (tests, private access)
DEFAULT_ENDPOINT = "https://secretmanager.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_NAME_RE = re.compile(r"^projects/[^/]+/secrets/[^/]+/versions/[^/]+$")


def access(name: str, what: str, environ: Optional[Mapping[str, str]] = None) -> str:
    """The value of secret version `name` (one trailing newline dropped); `what` says where
    the name came from, for messages. Raises ConfigError naming the secret, never its value."""
    env = os.environ if environ is None else environ
    if not _NAME_RE.match(name):
        raise ConfigError(f"{what}: expected projects/PROJECT/secrets/SECRET/versions/VERSION "
                          f"(VERSION may be 'latest'), got {name!r}")
    import google.auth
    from google.auth import exceptions as auth_exceptions
    from google.auth.transport.requests import AuthorizedSession

    endpoint = (env.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).rstrip("/")
    try:
        credentials, _ = google.auth.default(scopes=[SCOPE])
        response = AuthorizedSession(credentials).get(f"{endpoint}/v1/{name}:access", timeout=30)
    except (auth_exceptions.GoogleAuthError, OSError) as exc:
        raise ConfigError(f"{what}: cannot read secret {name} from Secret Manager: {exc}") from None
    if response.status_code != 200:
        try:
            detail = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            detail = response.text[:200]
        raise ConfigError(
            f"{what}: cannot read secret {name} from Secret Manager (HTTP {response.status_code}: "
            f"{detail}); the job's service account needs roles/secretmanager.secretAccessor on it"
        )
    value = base64.b64decode(response.json()["payload"]["data"]).decode("utf-8")
    return value[:-1] if value.endswith("\n") else value

"""A small PUT without botocore's per-call pipeline.

A replicator of a thousand databases sends hundreds of small PUTs a second
(one batch each) from one process, and it is bound by the GIL: ``put_object``
spends about half its client CPU in botocore's generic machinery (parameter
validation, serialisation, a dozen event emissions, response parsing) that a
PUT of bytes with a few headers does not need. This sends the same request
through the same client's parts: its credentials (so refreshing ones
refresh), its region, its endpoint, its connection pool (with the proxies and
TLS settings botocore gave it), signed by botocore's own S3 SigV4 signer.

The body is protected on the wire at least as put_object's is: the signer
always covers its SHA-256 (``x-amz-content-sha256``; botocore's S3 signer
signs the payload of any request it is given without a streaming context),
and it carries ``Content-MD5``, so a server that checks either (AWS S3 and
MinIO check both; moto and s3rver neither) refuses a body damaged in transit.

Answers and failures come back as the exceptions ``put_object`` raises (a
ClientError carrying the error's code, message and status; botocore's
connection errors from its HTTP session), so S3Store judges them in one
place either way. Only bodies small enough to go without ``Expect:
100-continue`` come here (s3.EXPECT_CONTINUE_BYTES); any client this cannot
take apart goes through ``put_object``.
"""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import botocore.exceptions
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest


@dataclass(frozen=True)
class DirectPut:
    bucket_url: str  # endpoint/bucket/ (path-style, as make_client addresses)
    region: str
    credentials: Any  # botocore Credentials (refreshable or not)
    http: Any  # botocore URLLib3Session: the client's own pool

    @classmethod
    def of(cls, client: Any, bucket: str) -> DirectPut | None:
        """For a client made by s3.make_client; None when it lacks the parts."""
        try:
            endpoint = client.meta.endpoint_url
            region = client.meta.region_name
            credentials = client._request_signer._credentials
            http = client._endpoint.http_session
            addressing = (client.meta.config.s3 or {}).get("addressing_style")
        except AttributeError:
            return None
        if not endpoint or not region or addressing != "path" or not hasattr(http, "send"):
            return None
        return cls(endpoint.rstrip("/") + "/" + quote(bucket, safe="") + "/", region, credentials, http)

    def put(self, key: str, body: bytes, headers: dict[str, str]) -> str:
        """PUT ``body`` under ``key``; the new ETag. Raises what put_object would."""
        if self.credentials is None:
            raise botocore.exceptions.NoCredentialsError()
        frozen = self.credentials.get_frozen_credentials()
        if frozen.access_key is None:
            raise botocore.exceptions.NoCredentialsError()
        headers = dict(headers)
        headers["Content-MD5"] = content_md5(body)
        request = AWSRequest("PUT", self.bucket_url + quote(key, safe="/~"), data=body, headers=headers)
        S3SigV4Auth(frozen, "s3", self.region).add_auth(request)
        response = self.http.send(request.prepare())
        if 200 <= response.status_code < 300:
            return str(response.headers.get("ETag", ""))
        raise botocore.exceptions.ClientError(_error_of(response), "PutObject")  # type: ignore[arg-type]


def content_md5(body: bytes) -> str:
    """The Content-MD5 header's value for ``body``."""
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


def _error_of(response: Any) -> dict[str, Any]:
    """The parts of an S3 error answer that put_object's ClientError carries."""
    code, message = "", ""
    try:
        root = ET.fromstring(response.content or b"")
        code = root.findtext("Code") or ""
        message = root.findtext("Message") or ""
    except ET.ParseError:
        pass  # a proxy's HTML page, or no body (a HEAD-like 412): the status says it
    return {
        "Error": {"Code": code or str(response.status_code), "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": response.status_code, "HTTPHeaders": dict(response.headers)},
    }

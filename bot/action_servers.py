"""Several action servers behind each Rasa server: the action endpoint's URL may list them,
comma-separated (``MESO_ACTION_ENDPOINT`` in the stack's endpoints file), and a call goes to
the first that answers.

Rasa's action endpoint has one URL. :func:`several_action_servers` (applied by
``bot.rasa_server`` at start) lets ``EndpointConfig.request`` take a list: the servers are
asked in the order listed, a server that could not be reached, dropped the connection or
failed with a server error is asked last for :data:`RETRY_AFTER_S`, and the call is sent to
the next at once. That is safe because the action servers keep nothing (``bot.action_server``):
a call returns the events to apply, nothing happens elsewhere, so one that never reached its
server, or failed in it, can be made again. A call that timed out is not made again (it
may still be running). One URL, as before: Rasa's own code, unchanged.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any, Callable, Dict, List, Optional, Text

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 5.0
"""A server that failed is asked last for this long, then in its turn again."""


class ServerList:
    """The servers of one endpoint URL, in the order to ask them."""

    def __init__(self, urls: Text, clock: Callable[[], float] = time.monotonic) -> None:
        self.urls: List[Text] = [url.strip() for url in urls.split(",") if url.strip()]
        self._down_until: Dict[Text, float] = {}
        self._clock = clock

    def order(self) -> List[Text]:
        now = self._clock()
        up = [url for url in self.urls if self._down_until.get(url, 0.0) <= now]
        return up + [url for url in self.urls if url not in up]

    def failed(self, url: Text, error: BaseException) -> None:
        if self._down_until.get(url, 0.0) <= self._clock():
            logger.warning("action server %s failed (%s): asked last for %gs",
                           url, type(error).__name__, RETRY_AFTER_S)
        self._down_until[url] = self._clock() + RETRY_AFTER_S

    def answered(self, url: Text) -> None:
        self._down_until.pop(url, None)


def _retryable(error: BaseException) -> bool:
    """A call another server may be asked: it never got there, its connection was lost, or
    the server failed (a 4xx is the action's own answer, kept)."""
    import aiohttp
    from rasa.utils.endpoints import ClientResponseError

    if isinstance(error, (ClientResponseError, aiohttp.ClientResponseError)):
        return error.status >= 500
    return isinstance(error, aiohttp.ClientConnectionError)


def several_action_servers(clock: Callable[[], float] = time.monotonic) -> None:
    """Let an endpoint URL list several servers (see the module's docstring)."""
    from rasa.utils.endpoints import EndpointConfig

    request = EndpointConfig.request
    if getattr(request, "several_servers", False):
        return
    lists: Dict[Text, ServerList] = {}

    async def request_first_that_answers(self: Any, method: Text = "post",
                                         subpath: Optional[Text] = None,
                                         content_type: Optional[Text] = "application/json",
                                         compress: bool = False, **kwargs: Any) -> Any:
        if not self.url or "," not in self.url:
            return await request(self, method, subpath, content_type, compress, **kwargs)
        servers = lists.get(self.url)
        if servers is None:
            servers = lists[self.url] = ServerList(self.url, clock)
        last: Optional[BaseException] = None
        for url in servers.order():
            single = copy.copy(self)
            single.url = url
            try:
                # Rasa's request takes "params" out of the kwargs it is given: a copy each.
                result = await request(single, method, subpath, content_type, compress, **dict(kwargs))
            except Exception as error:
                if not _retryable(error):
                    raise
                servers.failed(url, error)
                last = error
                continue
            servers.answered(url)
            return result
        assert last is not None
        raise last

    request_first_that_answers.several_servers = True  # type: ignore[attr-defined]
    EndpointConfig.request = request_first_that_answers  # type: ignore[method-assign]

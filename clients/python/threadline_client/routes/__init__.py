"""The REST routes of the contract (2.2), one module per area, each a mixin of
:class:`~threadline_client.client.ThreadlineClient`."""

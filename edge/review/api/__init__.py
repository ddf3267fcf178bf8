"""The versioned JSON API for HMI and MES clients (``/api/v1``), described by its OpenAPI document."""

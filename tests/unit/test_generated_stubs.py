"""The generated Python stubs load with the pinned runtime and serve over a real channel."""

import importlib

import grpc
import pytest
from contracts import own_files


def _services(fds):
    """(pb2 module, pb2_grpc module, ServiceDescriptorProto) for every Emporium service."""
    for f in own_files(fds):
        module = f.name.removesuffix(".proto").replace("/", ".")
        for service in f.service:
            yield (
                importlib.import_module(f"{module}_pb2"),
                importlib.import_module(f"{module}_pb2_grpc"),
                service,
            )


def _answering(base: type, method: str, label: str):
    """A servicer whose `method` fails with NOT_FOUND and `label` as the details."""

    async def answer(self, request, context):
        await context.abort(grpc.StatusCode.NOT_FOUND, label)

    return type(f"Answering{base.__name__}", (base,), {method: answer})()


async def test_every_service_stub_reaches_its_servicer_over_grpc(descriptor_set):
    server = grpc.aio.server()
    calls = []
    for messages, module, service in _services(descriptor_set):
        method = next(m for m in service.method if not m.server_streaming)
        label = f"{service.name}.{method.name}"
        base = getattr(module, f"{service.name}Servicer")
        getattr(module, f"add_{service.name}Servicer_to_server")(
            _answering(base, method.name, label), server
        )
        request = getattr(messages, method.input_type.rsplit(".", 1)[1])()
        calls.append((module, service, method, request, label))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            for module, service, method, request, label in calls:
                stub = getattr(module, f"{service.name}Stub")(channel)
                with pytest.raises(grpc.aio.AioRpcError) as error:
                    await getattr(stub, method.name)(request)
                # The servicer's answer crossed the wire both ways, status and details intact.
                assert error.value.code() == grpc.StatusCode.NOT_FOUND, label
                assert error.value.details() == label
    finally:
        await server.stop(None)
    assert len(calls) == 10, [c[4] for c in calls]

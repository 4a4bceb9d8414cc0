"""The CatalogService servicer: decodes requests, calls a handler, encodes the answer.

Access (public, user, admin) is enforced by kit's interceptor from the contract;
handlers check ownership and the admin-only views.
"""

from __future__ import annotations

import grpc
from emporium.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from google.protobuf import empty_pb2

from kit import auth, errors
from kit.errors import InvalidArgument
from services.catalog import mapping
from services.catalog.handlers import CatalogHandlers

LP = catalog_service_pb2.ListProductsRequest
_PRODUCT_SORTS = {
    LP.SORT_ORDER_UNSPECIFIED: "",
    LP.SORT_ORDER_RELEVANCE: "relevance",
    LP.SORT_ORDER_PRICE_ASCENDING: "price_ascending",
    LP.SORT_ORDER_PRICE_DESCENDING: "price_descending",
    LP.SORT_ORDER_NEWEST: "newest",
    LP.SORT_ORDER_RATING: "rating",
}
LR = catalog_service_pb2.ListReviewsRequest
_REVIEW_SORTS = {
    LR.SORT_ORDER_UNSPECIFIED: "newest",
    LR.SORT_ORDER_NEWEST: "newest",
    LR.SORT_ORDER_RATING_DESCENDING: "rating_descending",
    LR.SORT_ORDER_RATING_ASCENDING: "rating_ascending",
}


def _use_cache(context: grpc.aio.ServicerContext) -> bool:
    """False when an admin asks for fresh data (`cache-control: no-cache`), as the read
    benchmark does to measure the uncached path; everyone else is served through the cache."""
    metadata = dict(context.invocation_metadata() or ())
    wants_fresh = "no-cache" in str(metadata.get("cache-control", "")).lower()
    caller = auth.CALLER.get()
    return not (wants_fresh and caller is not None and caller.admin)


def _admin() -> bool:
    caller = auth.CALLER.get()
    return bool(caller and caller.admin)


class CatalogService(catalog_service_pb2_grpc.CatalogServiceServicer):
    def __init__(self, handlers: CatalogHandlers) -> None:
        self.handlers = handlers

    # --- products ---------------------------------------------------------------------------

    async def CreateProduct(self, request, context):
        product, _ = mapping.product_from_proto(request.product)
        state = mapping.product_state_of(request.product.state, "product.state")
        created = await self.handlers.create_product(
            auth.require_admin(), product, request.request_id, state
        )
        return mapping.product_to_proto(created)

    async def GetProduct(self, request, context):
        product = await self.handlers.get_product(
            auth.CALLER.get(), request.id, use_cache=_use_cache(context)
        )
        return mapping.product_reply(product)

    async def BatchGetProducts(self, request, context):
        products = await self.handlers.batch_get_products(
            auth.CALLER.get(), list(request.ids), use_cache=_use_cache(context)
        )
        return catalog_service_pb2.BatchGetProductsResponse(
            products=[mapping.product_reply(p) for p in products]
        )

    async def ListProducts(self, request, context):
        if request.sort_order not in _PRODUCT_SORTS:
            raise InvalidArgument("sort_order", "is not a known sort order")
        page = await self.handlers.list_products(
            auth.CALLER.get(),
            page_size=request.page_size,
            page_token=request.page_token,
            query=request.query,
            category_id=request.category_id,
            min_price=mapping.money_from_proto(request.min_price)
            if request.HasField("min_price")
            else None,
            max_price=mapping.money_from_proto(request.max_price)
            if request.HasField("max_price")
            else None,
            state=mapping.product_state_of(request.state),
            seller_id=request.seller_id,
            sort=_PRODUCT_SORTS[request.sort_order],
            use_cache=_use_cache(context),
        )
        return catalog_service_pb2.ListProductsResponse(
            products=[mapping.product_to_proto(p) for p in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateProduct(self, request, context):
        auth.require_admin()
        wanted, present = mapping.product_from_proto(request.product)
        if request.product.state:
            raise InvalidArgument(
                "product.state", "changes only through publish, archive and unarchive"
            )
        product = await self.handlers.update_product(
            request.id, wanted, list(request.update_mask.paths), present
        )
        return mapping.product_to_proto(product)

    async def PublishProduct(self, request, context):
        auth.require_admin()
        return mapping.product_to_proto(await self.handlers.publish_product(request.id))

    async def ArchiveProduct(self, request, context):
        auth.require_admin()
        return mapping.product_to_proto(await self.handlers.archive_product(request.id))

    async def UnarchiveProduct(self, request, context):
        auth.require_admin()
        return mapping.product_to_proto(await self.handlers.unarchive_product(request.id))

    # --- images -----------------------------------------------------------------------------

    async def UploadProductImage(self, request, context):
        auth.require_admin()
        raise errors.FailedPrecondition(
            "product images are uploaded through the file service: FileService.CreateUpload "
            "with purpose PURPOSE_PRODUCT_IMAGE and this product_id, then CompleteUpload",
            reason="IMAGE_UPLOADS_MOVED",
        )

    async def GetProductImage(self, request, context):
        await self.handlers.image_data(auth.CALLER.get(), request.product_id, request.id)

    async def UpdateProductImage(self, request, context):
        auth.require_admin()
        image = await self.handlers.update_image(
            request.product_id,
            request.id,
            alt_text=request.image.alt_text,
            position=request.image.position,
            mask=list(request.update_mask.paths),
        )
        return mapping.image_to_proto(image)

    async def DeleteProductImage(self, request, context):
        auth.require_admin()
        await self.handlers.delete_image(request.product_id, request.id)
        return empty_pb2.Empty()

    # --- categories -------------------------------------------------------------------------

    async def CreateCategory(self, request, context):
        auth.require_admin()
        category, _ = mapping.category_from_proto(request.category)
        created = await self.handlers.create_category(category, request.request_id)
        return mapping.category_to_proto(created)

    async def GetCategory(self, request, context):
        return mapping.category_to_proto(await self.handlers.get_category(request.id))

    async def ListCategories(self, request, context):
        page = await self.handlers.list_categories(
            page_size=request.page_size,
            page_token=request.page_token,
            parent_id=request.parent_id,
            slug=request.slug,
        )
        return catalog_service_pb2.ListCategoriesResponse(
            categories=[mapping.category_to_proto(c) for c in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateCategory(self, request, context):
        auth.require_admin()
        wanted, present = mapping.category_from_proto(request.category)
        category = await self.handlers.update_category(
            request.id, wanted, list(request.update_mask.paths), present
        )
        return mapping.category_to_proto(category)

    async def DeleteCategory(self, request, context):
        auth.require_admin()
        await self.handlers.delete_category(request.id)
        return empty_pb2.Empty()

    # --- stock and reservations -------------------------------------------------------------

    async def GetStock(self, request, context):
        level = await self.handlers.get_stock(auth.CALLER.get(), request.product_id)
        return mapping.stock_to_proto(level, full=_admin())

    async def AdjustStock(self, request, context):
        caller = auth.require_admin()
        change = request.WhichOneof("change")
        level = await self.handlers.adjust_stock(
            caller,
            request.product_id,
            request_id=request.request_id,
            delta=request.delta if change == "delta" else None,
            on_hand=request.on_hand_quantity if change == "on_hand_quantity" else None,
            reason=mapping.reason_of(request.reason),
            note=request.note,
        )
        return mapping.stock_to_proto(level)

    async def ListStockAdjustments(self, request, context):
        auth.require_admin()
        page = await self.handlers.list_stock_adjustments(
            request.product_id, page_size=request.page_size, page_token=request.page_token
        )
        return catalog_service_pb2.ListStockAdjustmentsResponse(
            stock_adjustments=[mapping.adjustment_to_proto(a) for a in page.items],
            next_page_token=page.next_page_token,
        )

    async def ReserveStock(self, request, context):
        auth.require_admin()
        ttl = request.ttl.ToTimedelta() if request.HasField("ttl") else None
        reservation = await self.handlers.reserve_stock(
            request.order_id, mapping.lines_from_proto(request.lines), ttl
        )
        return mapping.reservation_to_proto(reservation)

    async def GetReservation(self, request, context):
        auth.require_admin()
        reservation = await self.handlers.get_reservation(request.order_id)
        return mapping.reservation_to_proto(reservation)

    async def ListReservations(self, request, context):
        auth.require_admin()
        page = await self.handlers.list_reservations(
            page_size=request.page_size,
            page_token=request.page_token,
            state=mapping.reservation_state_of(request.state),
            product_id=request.product_id,
        )
        return catalog_service_pb2.ListReservationsResponse(
            reservations=[mapping.reservation_to_proto(r) for r in page.items],
            next_page_token=page.next_page_token,
        )

    async def ReleaseReservation(self, request, context):
        auth.require_admin()
        reservation = await self.handlers.release_reservation(request.order_id)
        return mapping.reservation_to_proto(reservation)

    async def CommitReservation(self, request, context):
        auth.require_admin()
        reservation = await self.handlers.commit_reservation(request.order_id)
        return mapping.reservation_to_proto(reservation)

    # --- reviews ----------------------------------------------------------------------------

    async def PostReview(self, request, context):
        wanted, _ = mapping.review_from_proto(request.review)
        review = await self.handlers.post_review(auth.caller(), request.product_id, wanted)
        return mapping.review_to_proto(review)

    async def GetReview(self, request, context):
        review = await self.handlers.get_review(request.product_id, request.id)
        return mapping.review_to_proto(review)

    async def ListReviews(self, request, context):
        if request.sort_order not in _REVIEW_SORTS:
            raise InvalidArgument("sort_order", "is not a known sort order")
        page = await self.handlers.list_reviews(
            request.product_id,
            page_size=request.page_size,
            page_token=request.page_token,
            rating=request.rating,
            sort=_REVIEW_SORTS[request.sort_order],
        )
        return catalog_service_pb2.ListReviewsResponse(
            reviews=[mapping.review_to_proto(r) for r in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateReview(self, request, context):
        wanted, present = mapping.review_from_proto(request.review)
        review = await self.handlers.update_review(
            auth.caller(),
            request.product_id,
            request.id,
            wanted,
            list(request.update_mask.paths),
            present,
        )
        return mapping.review_to_proto(review)

    async def DeleteReview(self, request, context):
        await self.handlers.delete_review(auth.caller(), request.product_id, request.id)
        return empty_pb2.Empty()

    async def GetRatingSummary(self, request, context):
        return mapping.summary_to_proto(await self.handlers.rating_summary(request.product_id))

"""A small shop and blog on SQLAlchemy 2, the application behind n1-detector's traffic: its
schema (users, sessions, posts, comments, tags, products, orders, items, settings, an audit log,
an activity feed), its fixed content, and its request handlers -- lazy loading in loops, the
same pages loaded eagerly, and the benign look-alikes of an N+1.

Nothing runs at import: ``simulator/nplusone.py`` creates the database and runs the handlers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Column, ForeignKey, Table, func, select
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    contains_eager,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
    subqueryload,
)


class Base(DeclarativeBase):
    pass


post_tags = Table(
    "post_tags", Base.metadata,
    Column("post_id", ForeignKey("posts.id"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id"), primary_key=True),
)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    email: Mapped[str]
    orders: Mapped[list[Order]] = relationship(back_populates="user", order_by="Order.id")
    posts: Mapped[list[Post]] = relationship(back_populates="author", order_by="Post.id")


class AuthSession(Base):
    __tablename__ = "auth_sessions"
    token: Mapped[str] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))


class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str]
    published: Mapped[bool]
    author: Mapped[User] = relationship(back_populates="posts")
    comments: Mapped[list[Comment]] = relationship(back_populates="post", order_by="Comment.id")
    tags: Mapped[list[Tag]] = relationship(secondary=post_tags, order_by="Tag.id")


class Comment(Base):
    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str]
    post: Mapped[Post] = relationship(back_populates="comments")
    author: Mapped[User] = relationship()


class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    price_cents: Mapped[int]


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str]
    total_cents: Mapped[int]
    user: Mapped[User] = relationship(back_populates="orders")
    items: Mapped[list[OrderItem]] = relationship(back_populates="order", order_by="OrderItem.id")


class OrderItem(Base):
    __tablename__ = "order_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int]
    order: Mapped[Order] = relationship(back_populates="items")
    product: Mapped[Product] = relationship()


class Setting(Base):
    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(primary_key=True)
    value: Mapped[str]


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str]


class Activity(Base):
    """A feed entry pointing at one target of its kind (a polymorphic association)."""

    __tablename__ = "activities"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str]  # the name of the relationship holding the target
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id"))
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    tag_id: Mapped[int | None] = mapped_column(ForeignKey("tags.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    post: Mapped[Post | None] = relationship()
    comment: Mapped[Comment | None] = relationship()
    order: Mapped[Order | None] = relationship()
    product: Mapped[Product | None] = relationship()
    tag: Mapped[Tag | None] = relationship()
    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])


USERS, POSTS, COMMENTS, TAGS, PRODUCTS, ORDERS, ACTIVITIES = 300, 900, 3000, 30, 150, 900, 3000
STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled", "refunded")
FEED_KINDS = ("post", "comment", "order", "product", "tag", "actor")


def populate(session: Session) -> None:
    """The fixed content of the database (its own seed: the traffic's rng never touches it)."""
    rng = np.random.default_rng(20261128)
    session.add_all(User(id=i, name=f"user{i}", email=f"user{i}@example.org")
                    for i in range(1, USERS + 1))
    session.add_all(AuthSession(token=f"tok-{i:05d}", user_id=i) for i in range(1, USERS + 1))
    session.add_all(Tag(id=i, name=f"tag{i}") for i in range(1, TAGS + 1))
    session.add_all(Product(id=i, name=f"product{i}", price_cents=int(rng.integers(100, 20000)))
                    for i in range(1, PRODUCTS + 1))
    session.add_all(Setting(key=k, value="1") for k in ("currency", "locale", "feature.feed",
                                                        "tax.rate", "shipping.free_above"))
    session.flush()
    for i in range(1, POSTS + 1):
        session.add(Post(id=i, author_id=int(rng.integers(1, USERS + 1)), title=f"post {i}",
                         published=bool(rng.random() < 0.9)))
    session.flush()
    session.execute(post_tags.insert(), [
        {"post_id": p, "tag_id": int(t)} for p in range(1, POSTS + 1)
        for t in rng.choice(np.arange(1, TAGS + 1), size=int(rng.integers(0, 5)), replace=False)])
    session.add_all(Comment(id=i, post_id=int(rng.integers(1, POSTS + 1)),
                            author_id=int(rng.integers(1, USERS + 1)), body="nice")
                    for i in range(1, COMMENTS + 1))
    item_id = 0
    for i in range(1, ORDERS + 1):
        session.add(Order(id=i, user_id=int(rng.integers(1, USERS + 1)),
                          status=STATUSES[int(rng.integers(0, 4))],
                          total_cents=int(rng.integers(500, 50000))))
        for _ in range(int(rng.integers(1, 6))):
            item_id += 1
            session.add(OrderItem(id=item_id, order_id=i,
                                  product_id=int(rng.integers(1, PRODUCTS + 1)),
                                  quantity=int(rng.integers(1, 4))))
    session.flush()
    limits = {"post": POSTS, "comment": COMMENTS, "order": ORDERS, "product": PRODUCTS,
              "tag": TAGS, "actor": USERS}
    for i in range(1, ACTIVITIES + 1):
        kind = FEED_KINDS[int(rng.integers(0, len(FEED_KINDS)))]
        session.add(Activity(id=i, user_id=int(rng.integers(1, USERS + 1)), kind=kind,
                             **{f"{kind}_id": int(rng.integers(1, limits[kind] + 1))}))
    session.commit()


# ----------------------------------------------------------------------------- request handlers
# Each takes the session, the marker of its loop, the user, a size and an offset into the data;
# loops that lazy-load run inside ``rec.loop()`` so the ground truth counts the lazy loads the
# ORM really emitted.


class LoopMarker(Protocol):
    def loop(self) -> AbstractContextManager[None]: ...


Handler = Callable[[Session, LoopMarker, int, int, int], None]


def _users(s: Session, size: int, offset: int) -> Sequence[User]:
    return s.scalars(select(User).order_by(User.id).limit(size).offset(offset)).all()


def _posts(s: Session, size: int, offset: int, *options: Any) -> Sequence[Post]:
    q = select(Post).where(Post.published.is_(True)).order_by(Post.id.desc())
    return s.scalars(q.options(*options).limit(size).offset(offset)).unique().all()


def _orders(s: Session, size: int, offset: int, *options: Any) -> Sequence[Order]:
    q = select(Order).order_by(Order.id.desc()).options(*options)
    return s.scalars(q.limit(size).offset(offset)).unique().all()


def lazy_orders_of_users(s: Session, rec: LoopMarker, _uid: int, size: int, offset: int) -> None:
    users = _users(s, size, offset)
    with rec.loop():
        for u in users:
            _ = [o.total_cents for o in u.orders]


def lazy_author_of_posts(s: Session, rec: LoopMarker, _uid: int, size: int, offset: int) -> None:
    posts = _posts(s, size, offset)
    with rec.loop():
        for p in posts:
            _ = p.author.name


def lazy_comments_of_posts(s: Session, rec: LoopMarker, _uid: int, size: int,
                           offset: int) -> None:
    posts = _posts(s, size, offset)
    with rec.loop():
        for p in posts:
            _ = len(p.comments)


def lazy_tags_of_posts(s: Session, rec: LoopMarker, _uid: int, size: int, offset: int) -> None:
    posts = _posts(s, size, offset)
    with rec.loop():
        for p in posts:
            _ = [t.name for t in p.tags]


def lazy_items_and_products(s: Session, rec: LoopMarker, _uid: int, size: int,
                            offset: int) -> None:
    orders = _orders(s, size, offset)
    with rec.loop():
        for o in orders:
            _ = [(i.quantity, i.product.name) for i in o.items]


def lazy_comment_counts(s: Session, rec: LoopMarker, _uid: int, size: int, offset: int) -> None:
    posts = _posts(s, size, offset)
    with rec.loop():
        for p in posts:
            s.scalar(select(func.count(Comment.id)).where(Comment.post_id == p.id))


def lazy_expired_after_commit(s: Session, rec: LoopMarker, uid: int, size: int,
                              offset: int) -> None:
    orders = _orders(s, size, offset)
    s.add(AuditEntry(user_id=uid, action="export"))
    s.commit()  # expire_on_commit: every order reloads itself on first access
    with rec.loop():
        for o in orders:
            _ = o.status


def eager_selectin(s: Session, _rec: LoopMarker, _uid: int, size: int, offset: int) -> None:
    for p in _posts(s, size, offset, selectinload(Post.comments), selectinload(Post.author)):
        _ = (len(p.comments), p.author.name)


def eager_joined(s: Session, _rec: LoopMarker, _uid: int, size: int, offset: int) -> None:
    for o in _orders(s, size, offset, joinedload(Order.user),
                     joinedload(Order.items).joinedload(OrderItem.product)):
        _ = (o.user.name, [i.product.name for i in o.items])


def eager_subquery(s: Session, _rec: LoopMarker, _uid: int, size: int, offset: int) -> None:
    for u in s.scalars(select(User).order_by(User.id).options(subqueryload(User.orders))
                       .limit(size).offset(offset)).all():
        _ = [o.total_cents for o in u.orders]


def eager_contains(s: Session, _rec: LoopMarker, uid: int, size: int, _offset: int) -> None:
    q = (select(Order).join(Order.user).options(contains_eager(Order.user))
         .where(Order.status == "paid", Order.user_id >= uid).order_by(Order.id).limit(size))
    for o in s.scalars(q).all():
        _ = o.user.name


def batched_in(s: Session, _rec: LoopMarker, _uid: int, size: int, offset: int) -> None:
    users = _users(s, size, offset)
    ids = [u.id for u in users]
    s.scalars(select(Order).where(Order.user_id.in_(ids)).order_by(Order.id)).all()


def small_loop(s: Session, rec: LoopMarker, _uid: int, _size: int, offset: int) -> None:
    users = _users(s, 2, offset)
    with rec.loop():
        for u in users:
            _ = len(u.orders)


def cache_miss(s: Session, _rec: LoopMarker, _uid: int, size: int, offset: int) -> None:
    key = ("currency", "locale", "tax.rate")[offset % 3]
    for o in _orders(s, size, offset):
        rate = s.scalar(select(Setting.value).where(Setting.key == key))
        _ = (o.total_cents, rate)


def offset_pagination(s: Session, _rec: LoopMarker, _uid: int, size: int, offset: int) -> None:
    for page in range(size):
        rows = s.scalars(select(Order).order_by(Order.id).limit(20).offset(offset + 20 * page))
        _ = rows.all()


def keyset_pagination(s: Session, _rec: LoopMarker, _uid: int, size: int, offset: int) -> None:
    last = offset * 10
    for _page in range(size):
        rows = s.scalars(select(Comment).where(Comment.id > last).order_by(Comment.id)
                         .limit(25)).all()
        last = rows[-1].id if rows else last


def write_loop(s: Session, _rec: LoopMarker, uid: int, size: int, offset: int) -> None:
    for i in range(size):  # a flush per row: one INSERT each, a write-batching matter
        s.add(AuditEntry(user_id=uid, action=f"import-row-{offset + i}"))
        s.flush()
    for o in _orders(s, size, offset):
        o.status = "shipped"
        s.flush()
    s.rollback()


def status_counts(s: Session, _rec: LoopMarker, uid: int, size: int, _offset: int) -> None:
    for status in STATUSES[: max(3, min(size, len(STATUSES)))]:
        s.scalar(select(func.count(Order.id)).where(Order.status == status,
                                                    Order.user_id != uid))


def chunked_in(s: Session, _rec: LoopMarker, _uid: int, size: int, offset: int) -> None:
    ids = list(range(1 + offset * 7, 1 + offset * 7 + 40 * size))
    for i in range(0, len(ids), 40):
        s.scalars(select(Product).where(Product.id.in_(ids[i:i + 40]))).all()


def fixed_lookups(s: Session, _rec: LoopMarker, _uid: int, size: int, offset: int) -> None:
    keys = ("currency", "locale", "tax.rate", "shipping.free_above", "feature.feed")
    for i in range(size):  # a handful of named settings, one call each: no loop over rows
        s.scalar(select(Setting.value).where(Setting.key == keys[(offset + i) % len(keys)]))


def feed(s: Session, rec: LoopMarker, uid: int, size: int, offset: int) -> None:
    rows = s.scalars(select(Activity).where(Activity.user_id >= uid).order_by(Activity.id)
                     .limit(size).offset(5 * offset)).all()
    with rec.loop():
        for a in rows:
            _ = getattr(a, a.kind)


def profile_page(s: Session, _rec: LoopMarker, uid: int, _size: int, _offset: int) -> None:
    user = s.get(User, uid)
    if user is not None:
        s.scalars(select(Order).where(Order.user_id == uid).order_by(Order.id.desc())
                  .limit(5)).all()
        s.scalar(select(func.count(Post.id)).where(Post.author_id == uid))
        s.scalars(select(Tag).order_by(Tag.name).limit(10)).all()

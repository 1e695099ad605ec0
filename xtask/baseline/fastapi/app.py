"""The FastAPI + SQLAlchemy baseline of `cargo xtask bench serve`.

The CRM app's company endpoints as the blueprint's original Python stack serves them: FastAPI with
Pydantic models, SQLAlchemy 2 (async, asyncpg), uvicorn with uvloop and httptools, on the tables
the generated CRM's migrations make, in the default tenant. The same requests and answers as the
hand-written Rust baseline: get with ETag, a filtered, sorted keyset page, create (201, Location,
ETag), and a JSON merge patch guarded by If-Match.

DATABASE_URL names the database (postgresql+asyncpg://...); POOL_SIZE the connections per worker.
"""

import base64
import json
import os
import re
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated, Literal, Optional

from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import (
    BigInteger,
    DateTime,
    Numeric,
    String,
    and_,
    cast,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TENANT = uuid.UUID(int=0)

engine = create_async_engine(
    os.environ["DATABASE_URL"],
    pool_size=int(os.environ.get("POOL_SIZE", "5")),
    max_overflow=0,
)
Session = async_sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class Company(Base):
    __tablename__ = "companies"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    name: Mapped[str] = mapped_column(String)
    domain: Mapped[Optional[str]] = mapped_column(String)
    website: Mapped[Optional[str]] = mapped_column(String)
    industry: Mapped[str] = mapped_column(String)
    employee_count: Mapped[Optional[int]] = mapped_column(BigInteger)
    annual_revenue: Mapped[Optional[Decimal]] = mapped_column(Numeric(16, 2))
    address: Mapped[Optional[dict]] = mapped_column(JSONB)
    tags: Mapped[list] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(BigInteger)


Industry = Literal[
    "software", "manufacturing", "retail", "finance", "healthcare", "education", "other"
]
Revenue = Annotated[str, Field(pattern=r"^-?[0-9]{1,14}(\.[0-9]{1,2})?$")]
Text200 = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
Tag = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[^\x00]*$")]
HOST = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")
    street: Annotated[str, Field(min_length=1, max_length=200)]
    city: Annotated[str, Field(min_length=1, max_length=100)]
    region: Optional[Annotated[str, Field(max_length=100)]] = None
    postal_code: Optional[Annotated[str, Field(max_length=20)]] = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class Fields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("domain", check_fields=False)
    @classmethod
    def host_name(cls, value):
        if value is not None and (len(value) > 253 or not HOST.match(value)):
            raise ValueError("a host name")
        return value

    @field_validator("website", check_fields=False)
    @classmethod
    def url(cls, value):
        if value is not None and not re.match(r"^https?://\S+$", value):
            raise ValueError("an http(s) URL")
        return value

    @field_validator("tags", check_fields=False)
    @classmethod
    def unique(cls, value):
        if value is not None and len(set(value)) != len(value):
            raise ValueError("each tag once")
        return value


class CompanyCreate(Fields):
    name: Text200
    domain: Optional[str] = None
    website: Optional[str] = None
    industry: Industry = "other"
    employee_count: Optional[Annotated[int, Field(ge=0)]] = None
    annual_revenue: Optional[Revenue] = None
    address: Optional[Address] = None
    tags: Annotated[list[Tag], Field(max_length=20)] = []


class CompanyPatch(Fields):
    name: Optional[Text200] = None
    domain: Optional[str] = None
    website: Optional[str] = None
    industry: Optional[Industry] = None
    employee_count: Optional[Annotated[int, Field(ge=0)]] = None
    annual_revenue: Optional[Revenue] = None
    address: Optional[Address] = None
    tags: Optional[Annotated[list[Tag], Field(max_length=20)]] = None


def problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


def as_json(company: Company) -> dict:
    return {
        "id": str(company.id),
        "name": company.name,
        "domain": company.domain,
        "website": company.website,
        "industry": company.industry,
        "employee_count": company.employee_count,
        "annual_revenue": None
        if company.annual_revenue is None
        else f"{company.annual_revenue:.2f}",
        "address": company.address,
        "tags": company.tags,
        "created_at": company.created_at.isoformat(),
        "updated_at": company.updated_at.isoformat(),
        "version": company.version,
    }


def entity(company: Company, status: int = 200) -> JSONResponse:
    headers = {"ETag": f'"{company.version}"'}
    if status == 201:
        headers["Location"] = f"/api/crm/companies/{company.id}"
    return JSONResponse(as_json(company), status_code=status, headers=headers)


app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.exception_handler(RequestValidationError)
async def invalid(request: Request, error: RequestValidationError):
    return problem(422, str(error.errors()[0].get("msg", "invalid")))


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}


@app.get("/api/crm/companies/{id}")
async def get_company(id: uuid.UUID):
    async with Session() as session:
        company = await session.scalar(
            select(Company).where(Company.tenant_id == TENANT, Company.id == id)
        )
    if company is None:
        return problem(404, "no such company")
    return entity(company)


SORTABLE = {
    "name": Company.name,
    "industry": Company.industry,
    "employee_count": Company.employee_count,
    "annual_revenue": Company.annual_revenue,
    "created_at": Company.created_at,
    "updated_at": Company.updated_at,
}


@app.get("/api/crm/companies")
async def list_companies(
    industry: Optional[str] = None,
    sort: str = "created_at",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Optional[str] = None,
):
    descending = sort.startswith("-")
    column = SORTABLE.get(sort.lstrip("-"))
    if column is None:
        return problem(400, "sort: a sortable column, - for descending")
    query = select(Company, column.cast(String).label("sort_key")).where(
        Company.tenant_id == TENANT
    )
    if industry is not None:
        if not industry.startswith("eq."):
            return problem(400, "industry: eq. and one of the industries")
        query = query.where(Company.industry == industry[3:])
    if cursor is not None:
        try:
            value, last = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            last = uuid.UUID(last)
        except Exception:
            return problem(400, "cursor: not one this server gave")
        beyond = (lambda a, b: a < b) if descending else (lambda a, b: a > b)
        if value is None:
            query = query.where(column.is_(None), beyond(Company.id, last))
        else:
            typed = cast(value, column.type)
            query = query.where(
                or_(
                    beyond(column, typed),
                    and_(column == typed, beyond(Company.id, last)),
                    column.is_(None),
                )
            )
    order = (column.desc(), Company.id.desc()) if descending else (column.asc(), Company.id.asc())
    query = query.order_by(order[0].nulls_last(), order[1]).limit(limit + 1)
    async with Session() as session:
        rows = (await session.execute(query)).all()
    items = [as_json(row[0]) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last_row = rows[limit - 1]
        next_cursor = (
            base64.urlsafe_b64encode(json.dumps([last_row[1], str(last_row[0].id)]).encode())
            .decode()
            .rstrip("=")
        )
    return JSONResponse({"items": items, "next_cursor": next_cursor})


@app.post("/api/crm/companies")
async def create_company(body: CompanyCreate):
    now = datetime.now(timezone.utc)
    values = body.model_dump()
    if values["annual_revenue"] is not None:
        values["annual_revenue"] = Decimal(values["annual_revenue"])
    company = Company(
        id=uuid.uuid4(), tenant_id=TENANT, created_at=now, updated_at=now, version=1, **values
    )
    async with Session() as session:
        session.add(company)
        try:
            await session.commit()
        except IntegrityError:
            return problem(409, "a company with this name or domain exists")
    return entity(company, 201)


def expected_version(if_match: Optional[str]):
    """The version If-Match names (None for none or *); weak tags never match."""
    if if_match is None:
        return None
    wanted = -1
    for tag in (t.strip() for t in if_match.split(",")):
        if tag == "*":
            return None
        weak = tag.startswith("W/")
        inner = tag[2:] if weak else tag
        if len(inner) < 2 or inner[0] != '"' or inner[-1] != '"':
            raise ValueError("If-Match: quoted entity tags")
        if not weak and inner[1:-1].isdigit():
            wanted = int(inner[1:-1])
    return wanted


@app.patch("/api/crm/companies/{id}")
async def patch_company(
    id: uuid.UUID, request: Request, if_match: Annotated[Optional[str], Header()] = None
):
    if not request.headers.get("content-type", "").startswith(
        ("application/merge-patch+json", "application/json")
    ):
        return problem(415, "send application/merge-patch+json")
    try:
        patch = CompanyPatch.model_validate_json(await request.body())
    except ValueError as error:
        return problem(422, str(error))
    try:
        expected = expected_version(if_match)
    except ValueError as error:
        return problem(400, str(error))
    changes = patch.model_dump(exclude_unset=True)
    for required in ("name", "industry", "tags"):
        if required in changes and changes[required] is None:
            return problem(422, f"{required}: required")
    if changes.get("annual_revenue") is not None:
        changes["annual_revenue"] = Decimal(changes["annual_revenue"])
    where = [Company.tenant_id == TENANT, Company.id == id]
    if expected is not None:
        where.append(Company.version == expected)
    async with Session() as session:
        if changes:
            statement = (
                update(Company)
                .where(*where)
                .values(**changes, updated_at=datetime.now(timezone.utc), version=Company.version + 1)
                .returning(Company)
            )
            company = await session.scalar(statement)
            await session.commit()
        else:
            company = await session.scalar(select(Company).where(*where))
        if company is not None:
            return entity(company)
        exists = await session.scalar(
            select(Company.version).where(Company.tenant_id == TENANT, Company.id == id)
        )
    if exists is None:
        return problem(404, "no such company")
    return problem(412, "the company changed since you read it")

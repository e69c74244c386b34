-- CreateTable
CREATE TABLE "CacheEpoch" (
    "topic" TEXT NOT NULL,
    "version" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "CacheEpoch_pkey" PRIMARY KEY ("topic")
);

-- CreateTable
CREATE TABLE "JobRun" (
    "job" TEXT NOT NULL,
    "slot" TIMESTAMP(3) NOT NULL,
    "node" TEXT NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "JobRun_pkey" PRIMARY KEY ("job","slot")
);

-- CreateTable
CREATE TABLE "BrowserSession" (
    "idHash" TEXT NOT NULL,
    "owner" TEXT NOT NULL,
    "principal" TEXT NOT NULL,
    "csrf" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastSeen" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "BrowserSession_pkey" PRIMARY KEY ("idHash")
);

-- CreateTable
CREATE TABLE "UploadSession" (
    "uuid" TEXT NOT NULL,
    "repository" TEXT NOT NULL,
    "owner" TEXT,
    "startedAt" TIMESTAMP(3) NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "offset" BIGINT NOT NULL DEFAULT 0,
    "hashState" BYTEA,
    "hashFormat" TEXT,
    "multipartId" TEXT,
    "parts" TEXT NOT NULL DEFAULT '[]',
    "tail" INTEGER NOT NULL DEFAULT 0,
    "lease" TEXT,
    "leaseUntil" TIMESTAMP(3),
    "version" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "UploadSession_pkey" PRIMARY KEY ("uuid")
);

-- CreateIndex
CREATE INDEX "BrowserSession_owner_lastSeen_idx" ON "BrowserSession"("owner", "lastSeen");

-- CreateIndex
CREATE INDEX "BrowserSession_lastSeen_idx" ON "BrowserSession"("lastSeen");

-- CreateIndex
CREATE INDEX "UploadSession_repository_idx" ON "UploadSession"("repository");

-- CreateIndex
CREATE INDEX "UploadSession_owner_idx" ON "UploadSession"("owner");

-- CreateIndex
CREATE INDEX "UploadSession_updatedAt_idx" ON "UploadSession"("updatedAt");

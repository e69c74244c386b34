-- CreateTable
CREATE TABLE "CacheEpoch" (
    "topic" TEXT NOT NULL PRIMARY KEY,
    "version" BIGINT NOT NULL DEFAULT 0
);

-- CreateTable
CREATE TABLE "JobRun" (
    "job" TEXT NOT NULL,
    "slot" DATETIME NOT NULL,
    "node" TEXT NOT NULL,
    "startedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,

    PRIMARY KEY ("job", "slot")
);

-- CreateTable
CREATE TABLE "BrowserSession" (
    "idHash" TEXT NOT NULL PRIMARY KEY,
    "owner" TEXT NOT NULL,
    "principal" TEXT NOT NULL,
    "csrf" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastSeen" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "UploadSession" (
    "uuid" TEXT NOT NULL PRIMARY KEY,
    "repository" TEXT NOT NULL,
    "owner" TEXT,
    "startedAt" DATETIME NOT NULL,
    "updatedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "offset" BIGINT NOT NULL DEFAULT 0,
    "hashState" BLOB,
    "hashFormat" TEXT,
    "multipartId" TEXT,
    "parts" TEXT NOT NULL DEFAULT '[]',
    "tail" INTEGER NOT NULL DEFAULT 0,
    "lease" TEXT,
    "leaseUntil" DATETIME,
    "version" INTEGER NOT NULL DEFAULT 0
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

-- CreateTable
CREATE TABLE "ReplicationPolicy" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "srcRegistryId" INTEGER,
    "destRegistryId" INTEGER,
    "destNamespace" TEXT NOT NULL DEFAULT '',
    "destNamespaceReplaceCount" INTEGER NOT NULL DEFAULT -1,
    "trigger" TEXT NOT NULL DEFAULT '{"type":"manual"}',
    "filters" TEXT NOT NULL DEFAULT '[]',
    "replicateDeletion" BOOLEAN NOT NULL DEFAULT false,
    "override" BOOLEAN NOT NULL DEFAULT true,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "speed" INTEGER NOT NULL DEFAULT -1,
    "copyByChunk" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "ReplicationExecution" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "policyId" INTEGER NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'InProgress',
    "statusText" TEXT NOT NULL DEFAULT '',
    "trigger" TEXT NOT NULL DEFAULT 'manual',
    "total" INTEGER NOT NULL DEFAULT 0,
    "failed" INTEGER NOT NULL DEFAULT 0,
    "succeed" INTEGER NOT NULL DEFAULT 0,
    "inProgress" INTEGER NOT NULL DEFAULT 0,
    "stopped" INTEGER NOT NULL DEFAULT 0,
    "node" TEXT,
    "heartbeat" DATETIME,
    "startedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "endedAt" DATETIME,
    CONSTRAINT "ReplicationExecution_policyId_fkey" FOREIGN KEY ("policyId") REFERENCES "ReplicationPolicy" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "ReplicationTask" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "executionId" INTEGER NOT NULL,
    "resourceType" TEXT NOT NULL DEFAULT 'image',
    "srcResource" TEXT NOT NULL,
    "dstResource" TEXT NOT NULL,
    "operation" TEXT NOT NULL DEFAULT 'copy',
    "status" TEXT NOT NULL DEFAULT 'Pending',
    "log" TEXT NOT NULL DEFAULT '',
    "startedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "endedAt" DATETIME,
    CONSTRAINT "ReplicationTask_executionId_fkey" FOREIGN KEY ("executionId") REFERENCES "ReplicationExecution" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "ReplicationPolicy_name_key" ON "ReplicationPolicy"("name");

-- CreateIndex
CREATE INDEX "ReplicationExecution_policyId_id_idx" ON "ReplicationExecution"("policyId", "id");

-- CreateIndex
CREATE INDEX "ReplicationExecution_status_idx" ON "ReplicationExecution"("status");

-- CreateIndex
CREATE INDEX "ReplicationTask_executionId_id_idx" ON "ReplicationTask"("executionId", "id");

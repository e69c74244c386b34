-- CreateTable
CREATE TABLE "RetentionPolicy" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "projectId" INTEGER NOT NULL,
    "algorithm" TEXT NOT NULL DEFAULT 'or',
    "rules" TEXT NOT NULL,
    "trigger" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "RetentionPolicy_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "RetentionExecution" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "policyId" INTEGER NOT NULL,
    "status" TEXT NOT NULL,
    "trigger" TEXT NOT NULL,
    "dryRun" BOOLEAN NOT NULL DEFAULT false,
    "node" TEXT NOT NULL,
    "heartbeat" DATETIME NOT NULL,
    "startedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "endedAt" DATETIME,
    CONSTRAINT "RetentionExecution_policyId_fkey" FOREIGN KEY ("policyId") REFERENCES "RetentionPolicy" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "RetentionTask" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "executionId" INTEGER NOT NULL,
    "repository" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "total" INTEGER NOT NULL DEFAULT 0,
    "retained" INTEGER NOT NULL DEFAULT 0,
    "log" TEXT NOT NULL DEFAULT '',
    "startedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "endedAt" DATETIME,
    CONSTRAINT "RetentionTask_executionId_fkey" FOREIGN KEY ("executionId") REFERENCES "RetentionExecution" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "RetentionPolicy_projectId_key" ON "RetentionPolicy"("projectId");

-- CreateIndex
CREATE INDEX "RetentionExecution_policyId_id_idx" ON "RetentionExecution"("policyId", "id");

-- CreateIndex
CREATE INDEX "RetentionExecution_status_idx" ON "RetentionExecution"("status");

-- CreateIndex
CREATE INDEX "RetentionTask_executionId_id_idx" ON "RetentionTask"("executionId", "id");

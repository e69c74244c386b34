-- CreateTable
CREATE TABLE "RetentionPolicy" (
    "id" SERIAL NOT NULL,
    "projectId" INTEGER NOT NULL,
    "algorithm" TEXT NOT NULL DEFAULT 'or',
    "rules" TEXT NOT NULL,
    "trigger" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "RetentionPolicy_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "RetentionExecution" (
    "id" SERIAL NOT NULL,
    "policyId" INTEGER NOT NULL,
    "status" TEXT NOT NULL,
    "trigger" TEXT NOT NULL,
    "dryRun" BOOLEAN NOT NULL DEFAULT false,
    "node" TEXT NOT NULL,
    "heartbeat" TIMESTAMP(3) NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "endedAt" TIMESTAMP(3),

    CONSTRAINT "RetentionExecution_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "RetentionTask" (
    "id" SERIAL NOT NULL,
    "executionId" INTEGER NOT NULL,
    "repository" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "total" INTEGER NOT NULL DEFAULT 0,
    "retained" INTEGER NOT NULL DEFAULT 0,
    "log" TEXT NOT NULL DEFAULT '',
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "endedAt" TIMESTAMP(3),

    CONSTRAINT "RetentionTask_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "RetentionPolicy_projectId_key" ON "RetentionPolicy"("projectId");

-- CreateIndex
CREATE INDEX "RetentionExecution_policyId_id_idx" ON "RetentionExecution"("policyId", "id");

-- CreateIndex
CREATE INDEX "RetentionExecution_status_idx" ON "RetentionExecution"("status");

-- CreateIndex
CREATE INDEX "RetentionTask_executionId_id_idx" ON "RetentionTask"("executionId", "id");

-- AddForeignKey
ALTER TABLE "RetentionPolicy" ADD CONSTRAINT "RetentionPolicy_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RetentionExecution" ADD CONSTRAINT "RetentionExecution_policyId_fkey" FOREIGN KEY ("policyId") REFERENCES "RetentionPolicy"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RetentionTask" ADD CONSTRAINT "RetentionTask_executionId_fkey" FOREIGN KEY ("executionId") REFERENCES "RetentionExecution"("id") ON DELETE CASCADE ON UPDATE CASCADE;

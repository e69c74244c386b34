-- CreateTable
CREATE TABLE "ImmutableRule" (
    "id" SERIAL NOT NULL,
    "projectId" INTEGER NOT NULL,
    "priority" INTEGER NOT NULL DEFAULT 0,
    "disabled" BOOLEAN NOT NULL DEFAULT false,
    "tagSelectors" TEXT NOT NULL,
    "scopeSelectors" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "ImmutableRule_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "ImmutableRule_projectId_id_idx" ON "ImmutableRule"("projectId", "id");

-- AddForeignKey
ALTER TABLE "ImmutableRule" ADD CONSTRAINT "ImmutableRule_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;
